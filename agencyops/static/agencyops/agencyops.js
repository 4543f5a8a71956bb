// Behaviour every page shares, in a file the CSP allows (script-src 'self'): templates carry
// data attributes, never inline handlers.
//   <form data-confirm="End this engagement?">  asks in a modal dialog before submitting
//     (Esc or "Cancel" keeps the page as it was; the dialog takes focus and gives it back);
//   <button type="button" data-print>           prints the page.
// Without JavaScript a form submits directly; the server still checks every rule.
(function () {
  "use strict";

  function confirmDialog(message, confirmLabel, onConfirm, returnFocus) {
    var dialog = document.createElement("dialog");
    dialog.className = "confirm";
    dialog.setAttribute("aria-labelledby", "confirm-text");
    var text = document.createElement("p");
    text.id = "confirm-text";
    text.textContent = message;
    var actions = document.createElement("div");
    actions.className = "actions";
    var ok = document.createElement("button");
    ok.type = "button";
    ok.className = "primary";
    ok.textContent = confirmLabel || "Confirm";
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "Cancel";
    actions.appendChild(ok);
    actions.appendChild(cancel);
    dialog.appendChild(text);
    dialog.appendChild(actions);
    document.body.appendChild(dialog);
    function close() {
      dialog.close();
      dialog.remove();
      if (returnFocus) { returnFocus.focus(); }
    }
    ok.addEventListener("click", function () { close(); onConfirm(); });
    cancel.addEventListener("click", close);
    dialog.addEventListener("cancel", function (event) { event.preventDefault(); close(); });
    dialog.showModal();
    cancel.focus();  // the safe choice has focus: Enter alone never confirms
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) { return; }
    if (form.dataset.confirmed === "yes") { return; }
    event.preventDefault();
    var submitter = event.submitter || form.querySelector("[type=submit]");
    confirmDialog(form.dataset.confirm, form.dataset.confirmLabel, function () {
      form.dataset.confirmed = "yes";
      if (form.requestSubmit) { form.requestSubmit(submitter || undefined); } else { form.submit(); }
    }, submitter);
  });

  // A table, chart or block of JSON wider than the screen scrolls in its own box (CSS): such
  // a box must be reachable by keyboard to be scrolled without a mouse.
  var SCROLLERS = "main table, main pre, main .card, main .table-scroll, main .chart-card";
  function focusableOverflow() {
    document.querySelectorAll(SCROLLERS).forEach(function (table) {
      var style = window.getComputedStyle(table);
      var scrolls = ["auto", "scroll"].indexOf(style.overflowX) >= 0 ||
        ["auto", "scroll"].indexOf(style.overflowY) >= 0;
      var overflows = scrolls && (table.scrollWidth > table.clientWidth + 1 ||
        table.scrollHeight > table.clientHeight + 1);
      if (overflows && !table.hasAttribute("tabindex")) {
        table.setAttribute("tabindex", "0");
        table.dataset.scrollFocus = "yes";
      } else if (!overflows && table.dataset.scrollFocus === "yes") {
        table.removeAttribute("tabindex");
        delete table.dataset.scrollFocus;
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusableOverflow);
  } else {
    focusableOverflow();
  }
  window.addEventListener("resize", focusableOverflow);

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-print]") : null;
    if (button) { event.preventDefault(); window.print(); }
  });
})();

// The restore form asks before it overwrites: ticking "Overwrite files already in that
// folder" puts data-confirm on the form (agencyops.js shows the dialog on submit), naming the
// folder; unticked, the form submits as it is and the server refuses a folder holding files.
(function () {
  "use strict";
  function update(form) {
    var box = form.querySelector("input[name=overwrite]");
    var path = form.querySelector("input[name=destination_path]");
    var where = form.querySelector("select[name=destination_location]");
    if (!box) { return; }
    if (box.checked) {
      var place = where && where.selectedIndex >= 0 ? where.options[where.selectedIndex].text + " " : "";
      form.dataset.confirm = "This overwrites files in " + place + (path ? path.value : "") + ". Restore anyway?";
    } else {
      delete form.dataset.confirm;
    }
  }
  document.querySelectorAll("form.restore-form").forEach(function (form) {
    form.addEventListener("change", function () { update(form); });
    form.addEventListener("input", function () { update(form); });
    update(form);
  });
})();

"""Lifecycle pages, split by sub-domain: the dashboard (and its alert button), the access
logs, deletions (request, decide, engagement end), legal holds, the settings an admin keeps
(obligations, procurement tokens, processing record, approvals required) and the evidence and
certificates (pages, signed JSON, PDFs, the token holder's form). Thin views over selectors and
services; lifecycle/urls.py names them."""

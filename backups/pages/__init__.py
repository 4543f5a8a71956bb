"""Backup pages beyond the dataset page, one module per area: restore (snapshot browser,
download, point-in-time restores), settings (policies, prices, notifications) and assurance
(alert centre, costs, copy map). Thin views over the services and selectors."""

"""Backup pages beyond the dataset page: settings (policies, prices, notifications) and
assurance (alert centre, costs, copy map). Thin views over the services and selectors."""

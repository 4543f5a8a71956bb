"""The clients app's pages: the inventory (clients, engagements, datasets) and the settings an
owner or admin configures (locations, members and invitations, grants), and each person's
account. Thin views: a form, a service or selector, a template."""

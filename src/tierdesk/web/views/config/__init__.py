"""Configuration pages for managers and admins: one module per area (catalog, routing,
SLAs, escalation, people). Each module's views hand every change to its domain's services,
which check the actor's scope; the pages only collect input and show refusals."""

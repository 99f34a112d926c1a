"""L1 automation: directory connectors (LDAP), runbooks and the engine that runs them, and
the self-service actions built on them."""

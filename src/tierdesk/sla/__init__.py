"""SLA policies, business calendars, clocks and breaches."""

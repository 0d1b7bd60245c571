-- A client's groups_claim and roles_claim must be different claim names (ignoring case): the
-- admin API checks a body that sends both, and this keeps the rule when a PATCH sends only one
-- (it writes only that column, so the other is whatever is stored when the write happens, also
-- if another request changed it a moment ago). The admin API answers the abort with a 400.

CREATE TRIGGER clients_claim_names_insert BEFORE INSERT ON clients
WHEN lower(NEW.groups_claim) = lower(NEW.roles_claim)
BEGIN
  SELECT RAISE(ABORT, 'clavex: groups_claim and roles_claim must differ');
END;

CREATE TRIGGER clients_claim_names_update BEFORE UPDATE OF groups_claim, roles_claim ON clients
WHEN lower(NEW.groups_claim) = lower(NEW.roles_claim)
BEGIN
  SELECT RAISE(ABORT, 'clavex: groups_claim and roles_claim must differ');
END;

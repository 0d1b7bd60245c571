-- Organization setting `password_signin` (issue 17): where it is 0 the organization's people sign
-- in only through its upstream connections. The login page then shows no password form, and
-- POST /{org}/login refuses a password before it is looked at (src/oidc/login.rs): hiding the
-- form alone would leave the password path open to anyone who posts to it.
ALTER TABLE organizations ADD COLUMN password_signin INTEGER NOT NULL DEFAULT 1;

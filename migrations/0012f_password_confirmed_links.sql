-- An upstream link confirmed by signing in once with the local account's password (the
-- confirmation page, src/oidc/federation_link.rs) rests on that password: when it is replaced —
-- changed on the account page, reset by a one-time link, set by an administrator — the link is
-- removed with it, so someone who once knew the password cannot keep signing in through the
-- upstream account they attached with it. Links made otherwise (a user created or matched by a
-- verified e-mail at first upstream sign-in) are kept; rows from before this column are 0: how
-- they were made is not known.
ALTER TABLE user_links ADD COLUMN confirmed_by_password INTEGER NOT NULL DEFAULT 0;

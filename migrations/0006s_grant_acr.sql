-- The acr value a sign-in's request chose (acr_values as a preference, or an essential acr in the
-- claims parameter; src/protocol/acr.rs), so that the ID token of every refresh carries the same
-- acr as the first. NULL: none was chosen (and for grants from before this), and acr follows amr.
ALTER TABLE grants ADD COLUMN acr TEXT;

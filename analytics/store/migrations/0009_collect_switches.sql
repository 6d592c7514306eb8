-- Each site's minimisation switches over the global ones (`[collect]` in config.toml): a JSON object from a field
-- name (utm, locations, ...) to true or false; a field it does not name follows the global setting.
ALTER TABLE sites ADD COLUMN collect TEXT NOT NULL DEFAULT '{}';

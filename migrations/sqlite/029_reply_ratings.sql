-- A reply's rating by its chat's owner (docs/api.md "Rating replies"): thumbs up or down, or none.
ALTER TABLE messages ADD COLUMN rating TEXT CHECK (rating IN ('up', 'down'));

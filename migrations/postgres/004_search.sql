-- Search (GET /v1/search): message texts and session titles as tsvectors under GIN indexes.
-- The 'simple' configuration (no stemming, any language) over unaccent: case and accents do not
-- matter (cafe finds Café). unaccent is not IMMUTABLE, so an index needs this wrapper, which pins
-- its dictionary.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE FUNCTION search_vector(text) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  RETURN to_tsvector('simple'::regconfig, unaccent('unaccent'::regdictionary, $1));
CREATE INDEX idx_messages_search ON messages USING gin (search_vector(content));
CREATE INDEX idx_sessions_search ON sessions USING gin (search_vector(title));

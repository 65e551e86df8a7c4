-- A bulletin's readers of an edition, per team, counted from this index alone (the bulletins list counts them for
-- every bulletin it shows).
CREATE INDEX document_entries_readers ON document_entries (kind, doc_id, detail, team, username);

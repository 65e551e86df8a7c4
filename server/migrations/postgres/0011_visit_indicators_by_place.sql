-- Taking a place out of coverage or recounting it (an office merge or rejection, a correction from the field, a
-- re-import that changes its kind) deletes its rows here by place: without this index each of those scanned the
-- whole table, a second at three million visits, while every sync waited to write.
CREATE INDEX visit_indicators_place ON visit_indicators (place_id);

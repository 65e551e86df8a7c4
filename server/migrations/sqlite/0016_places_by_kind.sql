-- The places of one kind and setting, in id order: a campaign version's recount walks them in ranges of ids
-- (`projection::recount_range`), and a kind of few places (shops, outlets) would otherwise take a scan of every
-- place in each range.
CREATE INDEX places_kind ON places (kind, rural, place_id);

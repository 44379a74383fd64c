-- Where an object's blob is when the blob store chose the place itself (a
-- pack and an offset, "SEQ:OFFSET"); empty for blobs stored under their
-- key alone. The key stays the object's content identity: duplicates and
-- conflicts are decided on blob_key.
ALTER TABLE instances ADD COLUMN blob_loc TEXT NOT NULL DEFAULT '';

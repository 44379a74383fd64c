-- Searches list a dataset's studies in the order they were stored
-- (ORDER BY pk) and stop at the page's end. An index on dataset_id alone
-- holds each dataset's studies in that order (SQLite keys every index by
-- the row id last), so a search walks it and stops after the page instead
-- of reading every study of the dataset and sorting them; studies_date,
-- whose entries follow the date, cannot do that.
CREATE INDEX studies_dataset ON studies (dataset_id);

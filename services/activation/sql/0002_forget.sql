-- What ForgetCitizen and the retention purge need: an event whose person was forgotten (or
-- whose campaign's person-level data was purged) keeps its place in the history - stage,
-- unit, day, channel, volunteer - but no longer says whose it was. citizen_key becomes NULL
-- and the note is emptied; counts (totals, daily) are never touched by either.
ALTER TABLE events ALTER COLUMN citizen_key DROP NOT NULL;

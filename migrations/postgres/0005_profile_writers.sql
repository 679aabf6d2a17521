-- Open windows (and their rollups, and offline runs' record parts) are stored per writer: each
-- `driftd serve` process sharing this database writes its own partial, and reads merge them.
-- Rows stored before belong to the writer '' and stay.
ALTER TABLE profiles ADD COLUMN writer TEXT NOT NULL DEFAULT '';
ALTER TABLE profiles DROP CONSTRAINT profiles_pkey;
ALTER TABLE profiles ADD PRIMARY KEY (dataset, stage, kind, run_id, part, start_ms, writer);

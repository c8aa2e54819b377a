-- A principal whose device was lost: the operator releases the handle, and
-- the next registration of it takes new keys (key_version keeps growing).
ALTER TABLE principals ADD COLUMN released INTEGER NOT NULL DEFAULT 0;

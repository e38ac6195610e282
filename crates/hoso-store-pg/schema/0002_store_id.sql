-- The store's id, made when the store is created: a projection snapshot names it, so that a
-- snapshot taken of another store's log is never loaded over this one.
CREATE TABLE hoso_store_id (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id uuid NOT NULL
);
INSERT INTO hoso_store_id (id) VALUES (gen_random_uuid());

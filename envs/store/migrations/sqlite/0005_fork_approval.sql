-- A fork PR's approval is pinned to a commit and to an image: when GitHub says the head was
-- pushed (its clock, from the pull_request payload), and the digest the approval covers.
ALTER TABLE pull_requests ADD COLUMN head_pushed_at TEXT;
ALTER TABLE pull_requests ADD COLUMN approved_image TEXT;

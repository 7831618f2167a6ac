-- The roster's campaigns, as this service last heard of them. The roster owns campaigns; this
-- copy lets RecordEvents refuse an unknown campaign without asking the roster each time, and
-- lets the retention pass count from the campaign's real last day, both while the roster is
-- down. Filled from GetCampaign on a miss and refreshed from ListCampaigns by the background
-- pass; never deleted (the roster does not delete campaigns).
CREATE TABLE campaigns (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    starts_on    date NOT NULL,
    ends_on      date NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);

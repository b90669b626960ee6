-- Source schema of the engagement pipeline (issue 2), the indexes and publication CDC relies on,
-- and a catalogue of content. Safe to apply to an empty database and safe to apply again:
-- every statement is guarded (IF NOT EXISTS, ON CONFLICT DO NOTHING, a DO block for the publication).

CREATE TABLE IF NOT EXISTS content (
    id              UUID PRIMARY KEY,
    slug            TEXT UNIQUE NOT NULL,
    title           TEXT NOT NULL,
    content_type    TEXT CHECK (content_type IN ('podcast', 'newsletter', 'video')),
    length_seconds  INTEGER,
    publish_ts      TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS engagement_events (
    id           BIGSERIAL PRIMARY KEY,
    content_id   UUID REFERENCES content(id),
    user_id      UUID,
    event_type   TEXT CHECK (event_type IN ('play', 'pause', 'finish', 'click')),
    event_ts     TIMESTAMPTZ NOT NULL,
    duration_ms  INTEGER,
    device       TEXT,
    raw_payload  JSONB
);

CREATE INDEX IF NOT EXISTS engagement_events_event_ts_idx ON engagement_events (event_ts);
CREATE INDEX IF NOT EXISTS engagement_events_content_id_idx ON engagement_events (content_id);

-- The publication `engage cdc` streams (CDC_PUBLICATION_NAME defaults to engage_pub).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'engage_pub') THEN
        CREATE PUBLICATION engage_pub FOR TABLE content, engagement_events;
    END IF;
END
$$;

-- The catalogue. Ids are derived from the slug (md5 → UUID), so every database gets the same ids.
-- publish_ts is relative to the moment the file is applied: age_days/hour_offset before the current
-- hour, spread over the past two years. length_seconds is NULL for a few items on purpose (the
-- processor flags them: engagement_pct cannot be computed without a length).
INSERT INTO content (id, slug, title, content_type, length_seconds, publish_ts)
SELECT md5('engage-content:' || c.slug)::uuid,
       c.slug,
       c.title,
       c.content_type,
       c.length_seconds,
       date_trunc('hour', now()) - make_interval(days => c.age_days, hours => c.hour_offset)
FROM (VALUES
    -- podcasts: 15–90 minutes
    ('the-long-game-ep-101-compounding-habits',        'The Long Game #101: Compounding Habits',                'podcast',    3420::integer, 712, 6),
    ('the-long-game-ep-102-deep-work-revisited',       'The Long Game #102: Deep Work, Revisited',              'podcast',    3985, 698, 6),
    ('the-long-game-ep-103-saying-no',                 'The Long Game #103: The Art of Saying No',              'podcast',    2870, 684, 6),
    ('the-long-game-ep-118-founders-at-forty',         'The Long Game #118: Founders at Forty',                 'podcast',    4710, 474, 6),
    ('the-long-game-ep-131-sleep-science',             'The Long Game #131: What Sleep Science Actually Says',  'podcast',    5340, 292, 6),
    ('the-long-game-ep-144-remote-teams',              'The Long Game #144: Remote Teams That Work',            'podcast',    3105, 110, 6),
    ('the-long-game-ep-150-listener-questions',        'The Long Game #150: Listener Questions',                'podcast',    NULL,  26, 6),
    ('market-minute-rate-cut-watch',                   'Market Minute: Rate-Cut Watch',                         'podcast',     960, 402, 13),
    ('market-minute-earnings-season-primer',           'Market Minute: An Earnings Season Primer',              'podcast',    1140, 318, 13),
    ('market-minute-housing-cools',                    'Market Minute: The Housing Market Cools',               'podcast',    1020, 201, 13),
    ('market-minute-ai-capex-boom',                    'Market Minute: The AI Capex Boom',                      'podcast',    1260,  45, 13),
    ('market-minute-year-ahead',                       'Market Minute: The Year Ahead',                         'podcast',     915,   9, 13),
    ('kitchen-table-science-fermentation',             'Kitchen Table Science: Fermentation',                   'podcast',    2460, 640, 18),
    ('kitchen-table-science-why-bread-rises',          'Kitchen Table Science: Why Bread Rises',                'podcast',    2215, 533, 18),
    ('kitchen-table-science-the-maillard-reaction',    'Kitchen Table Science: The Maillard Reaction',          'podcast',    2730, 351, 18),
    ('kitchen-table-science-salt',                     'Kitchen Table Science: A Pinch of Salt',                'podcast',    1980,  77, 18),
    ('history-hour-the-printing-press',                'History Hour: The Printing Press',                      'podcast',    3610, 589, 9),
    ('history-hour-the-silk-road',                     'History Hour: Along the Silk Road',                     'podcast',    3880, 427, 9),
    ('history-hour-the-apollo-guidance-computer',      'History Hour: The Apollo Guidance Computer',            'podcast',    4120, 263, 9),
    ('history-hour-the-great-stink',                   'History Hour: London''s Great Stink',                   'podcast',    3330, 140, 9),
    ('history-hour-the-transistor',                    'History Hour: The Transistor',                          'podcast',    3945,  18, 9),
    ('city-desk-live-transit-funding-debate',          'City Desk Live: The Transit Funding Debate',            'podcast',    2580, 367, 20),
    ('city-desk-live-election-night-special',          'City Desk Live: Election Night Special',                'podcast',    5280, 225, 23),
    ('city-desk-live-heatwave-response',               'City Desk Live: How the City Handles a Heatwave',       'podcast',    2145,  60, 20),
    -- newsletters: 2–15 minutes of reading
    ('morning-brief-2024-w02',                         'Morning Brief: Five Things to Know This Week',          'newsletter',  300, 690, 5),
    ('morning-brief-2024-w19',                         'Morning Brief: The Chip Shortage, Explained',           'newsletter',  360, 573, 5),
    ('morning-brief-2024-w33',                         'Morning Brief: Olympic Takeaways',                      'newsletter',  240, 475, 5),
    ('morning-brief-2024-w48',                         'Morning Brief: Holiday Shopping by the Numbers',        'newsletter',  270, 370, 5),
    ('morning-brief-2025-w10',                         'Morning Brief: What Changed in Tax Rules',              'newsletter',  420, 265, 5),
    ('morning-brief-2025-w27',                         'Morning Brief: Summer Travel Chaos',                    'newsletter',  330, 146, 5),
    ('morning-brief-2025-w41',                         'Morning Brief: Quarterly Earnings Roundup',             'newsletter',  390,  48, 5),
    ('morning-brief-latest',                           'Morning Brief: This Week',                              'newsletter', NULL,   2, 5),
    ('the-builder-letter-pricing-your-first-product',  'The Builder Letter: Pricing Your First Product',        'newsletter',  720, 655, 15),
    ('the-builder-letter-hiring-engineer-one',         'The Builder Letter: Hiring Engineer Number One',        'newsletter',  840, 497, 15),
    ('the-builder-letter-postmortems-that-help',       'The Builder Letter: Postmortems That Actually Help',    'newsletter',  660, 330, 15),
    ('the-builder-letter-boring-technology',           'The Builder Letter: In Praise of Boring Technology',    'newsletter',  780, 180, 15),
    ('the-builder-letter-on-call-without-burnout',     'The Builder Letter: On-Call Without Burnout',           'newsletter',  900,  35, 15),
    ('weekend-reads-long-form-picks-spring',           'Weekend Reads: Long-Form Picks for Spring',             'newsletter',  540, 608, 8),
    ('weekend-reads-the-quiet-revival-of-trains',      'Weekend Reads: The Quiet Revival of Night Trains',      'newsletter',  600, 386, 8),
    ('weekend-reads-best-books-of-the-year',           'Weekend Reads: The Best Books of the Year',             'newsletter',  480, 359, 8),
    ('weekend-reads-ocean-cleanup-update',             'Weekend Reads: Where the Ocean Cleanup Stands',         'newsletter',  510, 122, 8),
    ('weekend-reads-the-garden-issue',                 'Weekend Reads: The Garden Issue',                       'newsletter', NULL,  11, 8),
    ('climate-notes-heat-pumps-101',                   'Climate Notes: Heat Pumps 101',                         'newsletter',  450, 520, 11),
    ('climate-notes-grid-batteries',                   'Climate Notes: The Grid Battery Boom',                  'newsletter',  510, 289, 11),
    -- videos: 1–30 minutes
    ('explainer-how-noise-cancelling-works',           'Explainer: How Noise Cancelling Works',                 'video',       412, 701, 16),
    ('explainer-why-planes-fly-so-high',               'Explainer: Why Planes Fly So High',                     'video',       355, 612, 16),
    ('explainer-inside-a-data-center',                 'Explainer: Inside a Data Center',                       'video',       764, 446, 16),
    ('explainer-the-math-of-queues',                   'Explainer: The Math of Waiting in Line',                'video',       538, 301, 16),
    ('explainer-how-vaccines-are-made',                'Explainer: How Vaccines Are Made',                      'video',       926, 158, 16),
    ('explainer-what-is-a-blockchain-really',          'Explainer: What Is a Blockchain, Really?',              'video',       611,  39, 16),
    ('quick-take-one-minute-recipe-shakshuka',         'Quick Take: One-Minute Shakshuka',                      'video',        64, 599, 12),
    ('quick-take-stretch-at-your-desk',                'Quick Take: Three Desk Stretches',                      'video',        92, 422, 12),
    ('quick-take-fold-a-fitted-sheet',                 'Quick Take: Fold a Fitted Sheet',                       'video',        75, 240, 12),
    ('quick-take-houseplant-rescue',                   'Quick Take: Houseplant Rescue',                         'video',       118,  88, 12),
    ('quick-take-sharpen-a-knife',                     'Quick Take: Sharpen a Knife Properly',                  'video',       146,   5, 12),
    ('workshop-intro-to-watercolour',                  'Workshop: Intro to Watercolour',                        'video',      1745, 558, 19),
    ('workshop-build-a-bookshelf',                     'Workshop: Build a Simple Bookshelf',                    'video',      1620, 394, 19),
    ('workshop-home-espresso-dialling-in',             'Workshop: Dialling In Home Espresso',                   'video',      1385, 213, 19),
    ('workshop-beginner-bike-maintenance',             'Workshop: Beginner Bike Maintenance',                   'video',      1790, 101, 19),
    ('interview-the-architect-of-the-new-library',     'Interview: The Architect of the New Library',           'video',      1512, 478, 14),
    ('interview-a-day-with-the-night-shift',           'Interview: A Day with the Night Shift',                  'video',      1198, 276, 14),
    ('interview-olympic-rower-on-recovery',            'Interview: An Olympic Rower on Recovery',               'video',      1334, 169, 14),
    ('interview-the-last-typewriter-repairman',        'Interview: The Last Typewriter Repairman',              'video',       NULL,  54, 14),
    ('documentary-short-the-river-keepers',            'Documentary Short: The River Keepers',                  'video',      1680,  16, 21)
) AS c(slug, title, content_type, length_seconds, age_days, hour_offset)
ON CONFLICT DO NOTHING;

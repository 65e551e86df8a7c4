-- The liaison roster (联络员名单), the villages' monthly written submissions (每月20日前书面报送) and their
-- major or urgent situation reports (重大紧急情况). Times in milliseconds since the epoch. The roster's deadline
-- is a setting (`settings`, name `roster_deadline`, a date YYYY-MM-DD). Ids are text (UUIDs), so that
-- `doorstep migrate` copies these tables as they are, with no sequence to carry over.

-- One person named by an area: its 分管领导 (`duty` = 'leader') or a 联络员 ('liaison'). An area's entries are
-- replaced as a whole when it files its roster again; `position` keeps the order they were given in.
CREATE TABLE roster_entries (
    entry_id TEXT PRIMARY KEY,
    area_code TEXT NOT NULL,
    position BIGINT NOT NULL,
    duty TEXT NOT NULL,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    post TEXT NOT NULL,
    phone TEXT NOT NULL,
    note TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX roster_entries_area ON roster_entries (area_code, position);

-- A village's or community's submission of a month (YYYY-MM): the figures as they stood when it was last saved
-- (JSON), what its cadre wrote, and whether (and when, by whom) it was submitted. Once submitted it is frozen.
CREATE TABLE monthly_submissions (
    area_code TEXT NOT NULL,
    month TEXT NOT NULL,
    figures TEXT NOT NULL,
    work_done TEXT NOT NULL,
    problems TEXT NOT NULL,
    plans TEXT NOT NULL,
    state TEXT NOT NULL,
    submitted_at BIGINT,
    submitted_by TEXT,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (area_code, month)
);
CREATE INDEX monthly_submissions_month ON monthly_submissions (month);

-- A major or urgent situation a cadre reports at once; `read_at` set once the office has opened it.
CREATE TABLE situation_reports (
    report_id TEXT PRIMARY KEY,
    area_code TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    urgency TEXT NOT NULL,
    filed_at BIGINT NOT NULL,
    filed_by TEXT NOT NULL,
    read_at BIGINT,
    read_by TEXT
);
CREATE INDEX situation_reports_filed ON situation_reports (filed_at);

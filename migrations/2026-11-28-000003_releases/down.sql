DROP TABLE IF EXISTS sweep_runs, release_activities, release_phases, release_links, releases CASCADE;

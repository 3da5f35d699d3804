DROP TABLE IF EXISTS input_sets, process_working_copies, process_versions, processes CASCADE;
DROP FUNCTION IF EXISTS process_versions_immutable();

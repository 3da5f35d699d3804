DROP TABLE IF EXISTS activity_comments;

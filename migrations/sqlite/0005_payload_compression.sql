-- PostgreSQL only (lz4 compression of webhook payloads); nothing to do on SQLite.
SELECT 1;

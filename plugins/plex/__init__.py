"""The Plex integration: everything genred does with a Plex Media Server, in one place.

- `source.PlexSource` (`plugins.sources.plex`): syncs the music sections into the store;
  hooks `request_scan` (a partial scan of changed folders), `listen` (websocket alerts,
  `alerts.py`) and `local_path` (`plex.path_map`, `paths.py`).
- `writeback.PlexWriteback` (`plugins.writeback.plex`): genres, moods and labels onto
  tracks, albums and artists, batched multi-edits, revertible.
- `playlists.PlexPlaylists` (`plugins.playlists.plex`): genred's playlists (made from
  prompts) as regular audio playlists, created once and edited in place.
- `webhook.py`: the `/webhooks/plex/<web.webhook_secret>` route the source registers.
- `commands.py`: `genred plex check` (can genred read the files Plex reports?).
- `connection.py`: connecting, retries, and plexapi's errors as genred's.

Config: the top-level `plex:` section (`url`, `token`, `sections`, `path_map`, `timeout`,
`verify_ssl`), each plugin's own settings under `plugins:`, and `web.webhook_secret`.
Extra: `genred[plex]` (plexapi, websocket-client).
"""

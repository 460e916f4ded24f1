"""Music folders without Plex: the `folder` source reads the files under `folders:`.

- `source.FolderSource` (`plugins.sources.folder`): walks the folders, reads tags with
  mutagen (a core dependency), keeps a moved file's track, serves the folder watcher's
  path-limited syncs (`supports_paths`).

Config: the top-level `folders:` list and `plugins.sources.folder` (`extensions`,
`follow_symlinks`, `page_size`). No extra needed.
"""

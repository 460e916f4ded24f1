"""Music folders without Plex: the `folder` source reads the files under `folders:`, and
the opt-in `tags` writeback writes decided genres and moods back into them.

- `source.FolderSource` (`plugins.sources.folder`): walks the folders, reads tags with
  mutagen (a core dependency), keeps a moved file's track, serves the folder watcher's
  path-limited syncs (`supports_paths`).
- `tags.TagsWriteback` (`plugins.writeback.tags`): reads and writes the genre and mood
  fields (`tagfields`: ID3, Vorbis comments, MP4, ASF, APEv2) raw, so a revert is exact;
  each file is replaced whole by `filewrite.replace_file` (a checked, flushed copy renamed
  over it, mode and owner kept) and reported with its new stat (`WritesFiles`), so the
  watcher and the next sync do not take genred's own write for a change.

Config: the top-level `folders:` list, `plugins.sources.folder` (`extensions`,
`follow_symlinks`, `page_size`) and `plugins.writeback.tags` (`split_hard_links`,
`fsync`; what and how is the top-level `writeback:`). No extra needed.
"""

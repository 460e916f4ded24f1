"""The Spotify integration: genred's playlists in a Spotify account, kept in place.

- `target.SpotifyPlaylists` (`plugins.playlists.spotify`, the `PlaylistTarget` contract):
  finds library tracks on Spotify (`matching.py`: by ISRC, else a field search with
  normalised titles and a similarity threshold), creates one playlist per genred playlist
  and edits it by diff (`POST/PUT/DELETE /playlists/{id}/items`, URIs in the body, ≤ 100
  per request), its description telling the prompt.
- `tokens.py`: the OAuth tokens of a daemon with no browser: `genred spotify login` once
  (authorization code, PKCE without a client secret), the refresh token kept 0600 in the
  data dir by a spotipy `CacheHandler` of ours that writes atomically; access tokens
  refreshed by genred, never by spotipy's `input()` fallback.
- `client.py`: every request, with spotipy's own retries off: a short 429 is waited out
  (interruptibly), a long one defers the job, 5xx and dropped connections are retried
  with backoff, a 401 refreshes the token once.
- `commands.py`: `genred spotify login` and `genred spotify status`.

Config: `plugins.playlists.spotify` (`client_id`, `client_secret` as
`${SPOTIFY_CLIENT_SECRET}` or none for PKCE, `redirect_uri`, `public`, limits and
retries; see `settings.py`). Extra: `genred[spotify]` (spotipy ≥ 2.26).
"""

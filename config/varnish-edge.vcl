#
# Varnish 7.1 (Debian 12's varnish package) as a CDN edge in front of the townhall origin,
# for LL-HLS (RFC 8216bis-17, Appendix B.1 "collapse requests at the edge"), tested end to
# end by tests/cdn_edge.rs like its nginx equivalent, config/nginx-edge.conf.
#
# THIS FILE IS A TEMPLATE. Replace every placeholder before use:
#   @ORIGIN_HOST@  address of the townhall origin (server.listen), e.g. 127.0.0.1
#   @ORIGIN_PORT@  its port, e.g. 8080
#   @CDN_SECRET@   townhall's hls.cdn_secret (sent to the origin in X-Townhall-CDN)
# and run e.g.  varnishd -F -a :80 -f /etc/varnish/townhall-edge.vcl -s malloc,1g
#
# What matters for LL-HLS, and how Varnish does it:
# - Cache key: the built-in vcl_hash hashes req.url, which is the path *with its query
#   string*, and the Host: `_HLS_msn`, `_HLS_part`, `_HLS_skip` name different playlists.
#   Never strip or sort them away.
# - Request collapsing is Varnish's default: concurrent misses of one object wait on the
#   first one's fetch (the waiting list) and are all answered when it lands, at once (no
#   polling), blocking playlist requests included.
# - Freshness comes from the origin's Cache-Control (blocking playlists 6 x TARGETDURATION,
#   plain playlists half of one, media immutable, errors 1 s, 503/403 no-store): beresp.ttl
#   is left as Varnish computes it from max-age.
# - Grace is off for playlists (below): no stale playlist is handed out while a fresh one
#   is fetched.
# - The backend's first-byte timeout is above the origin's blocking time (3 x
#   TARGETDURATION = 6 s with the defaults).
vcl 4.1;

backend townhall {
    .host = "@ORIGIN_HOST@";
    .port = "@ORIGIN_PORT@";
    # The origin holds a blocking playlist request up to 6 s before it answers.
    .first_byte_timeout = 15s;
    .between_bytes_timeout = 10s;
    .connect_timeout = 5s;
}

sub vcl_recv {
    # A viewer must not choose the secret: only vcl_backend_fetch sets it.
    unset req.http.X-Townhall-CDN;
    if (req.url ~ "^/hls/" && (req.method == "GET" || req.method == "HEAD")) {
        # Every viewer asks for the same URLs; cookies and credentials a browser adds for
        # the site's pages do not change an HLS object, and the built-in vcl_recv would
        # pass (not cache, not collapse) any request that carries them.
        unset req.http.Cookie;
        unset req.http.Authorization;
        return (hash);
    }
    # Pages, the API, WHIP/WHEP signalling, /healthz, /metrics: through, uncached. WebRTC
    # media never crosses the CDN (it goes to the origin's UDP port).
    return (pass);
}

sub vcl_backend_fetch {
    # The shared secret that identifies this edge (hls.cdn_secret; with hls.require_cdn the
    # origin refuses /hls/ to anyone without it).
    set bereq.http.X-Townhall-CDN = "@CDN_SECRET@";
}

sub vcl_backend_response {
    if (bereq.url ~ "^/hls/") {
        # One cached variant per URL. Varnish asks the origin for gzip and unzips for the
        # viewers that do not accept it (http_gzip_support, on by default), so the origin's
        # Vary: Accept-Encoding would only split objects; it is sent again in vcl_deliver.
        unset beresp.http.Vary;
        if (bereq.url ~ "\.m3u8(\?|$)") {
            # No grace for playlists: a blocking playlist's URL names a part that did not
            # exist when it was asked, so a stale copy never helps it, and a plain
            # playlist's max-age (half a target duration) is the origin's promise about how
            # far behind the live edge a viewer may start. Keep it a little longer than its
            # TTL only to revalidate it with If-None-Match (the origin answers 304).
            set beresp.grace = 0s;
            set beresp.keep = 10s;
        }
        if (beresp.http.Cache-Control ~ "no-store") {
            # 503 not_yet_available and 403 cdn_only: never stored. The built-in VCL would
            # make the URL "hit-for-miss" for 120 s, so that every later request for it
            # goes to the origin uncollapsed; a viewer retrying a blocking request must
            # collapse again after a second.
            set beresp.ttl = 1s;
            set beresp.grace = 0s;
            set beresp.uncacheable = true;
            return (deliver);
        }
    }
}

sub vcl_deliver {
    if (req.url ~ "\.m3u8(\?|$)") {
        set resp.http.Vary = "Accept-Encoding";
    }
    # HIT or MISS (a collapsed request that waited for another's fetch counts as a HIT),
    # as nginx's $upstream_cache_status.
    if (obj.uncacheable) {
        set resp.http.X-Cache-Status = "PASS";
    } elsif (obj.hits > 0) {
        set resp.http.X-Cache-Status = "HIT";
    } else {
        set resp.http.X-Cache-Status = "MISS";
    }
}

"""What the data-set tests let ``urllib`` reach: this machine (127.0.0.1) only."""
import urllib.parse
import urllib.request

_real_urlopen = urllib.request.urlopen


def local_only_urlopen(url, *args, **kwargs):
    """``urllib.request.urlopen`` for 127.0.0.1; any other address fails the test."""
    full = url if isinstance(url, str) else url.full_url
    if urllib.parse.urlsplit(full).hostname != "127.0.0.1":
        raise AssertionError(f"a test tried to reach the network: {full}")
    return _real_urlopen(url, *args, **kwargs)

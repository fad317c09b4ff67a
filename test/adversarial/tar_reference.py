"""
What Swift's bulk middleware stores of a tar (`PUT ?extract-archive`), read with the code Swift runs: Python's
tarfile in stream mode (`tarfile.open(mode='r|' + compress)`), driven the way bulk.handle_extract_iter drives
it (tar.next() until the end; regular files only; the name's bytes with one './' and leading '/' dropped, the
request's path in front, base-level files ignored; check_utf8 on the destination; the PUT reading
Content-Length bytes from tar.extractfile(); metadata from the pax records bulk's own pax_key_to_swift_header
maps). Containers, auth and limits are left out: this is about which bytes become which objects.

Input: one JSON object per line, {"tar": base64, "base": str, "compress": "" | "gz"}. Output: one JSON object
per line, {"files": [{"container", "object", "size", "stored", "utf8", "meta": [[key, value]...]}],
"error": null | str}. "stored" is whether the PUT read all of the file's bytes.
"""
import base64
import io
import json
import sys
import tarfile
import zlib

from swift.common import constraints
from swift.common.middleware.bulk import pax_key_to_swift_header
from swift.common.swob import bytes_to_wsgi, wsgi_to_str

CLIENT_CHUNK_SIZE = 65536  # the proxy server reads a PUT's body in blocks of client_chunk_size


def read_all(tar, tar_info):
    """Whether a PUT of tar_info.size bytes gets them all from tar.extractfile()."""
    stream = tar.extractfile(tar_info)
    left = tar_info.size
    try:
        while left > 0:
            chunk = stream.read(min(left, CLIENT_CHUNK_SIZE))
            if not chunk:
                return False
            left -= len(chunk)
    except (tarfile.TarError, zlib.error, EOFError, OSError):
        return False
    return True


def extract(body, base, compress):
    files = []
    extract_base = base.rstrip('/')
    try:
        tar = tarfile.open(mode='r|' + compress, fileobj=io.BytesIO(body))
        while True:
            tar_info = tar.next()
            if tar_info is None:
                break
            if not tar_info.isfile():
                continue
            obj_path = bytes_to_wsgi(tar_info.name.encode('utf-8', 'surrogateescape'))
            if obj_path.startswith('./'):
                obj_path = obj_path[2:]
            obj_path = obj_path.lstrip('/')
            if extract_base:
                obj_path = extract_base + '/' + obj_path
            if '/' not in obj_path:
                continue
            destination = '/'.join(['', 'v1', 'AUTH_test', obj_path])
            container, obj = obj_path.split('/', 1)
            utf8 = bool(constraints.check_utf8(wsgi_to_str(destination)))
            meta = [[k, v] for k, v in tar_info.pax_headers.items() if pax_key_to_swift_header(k)]
            entry = {'container': wsgi_to_str(container), 'object': wsgi_to_str(obj), 'size': tar_info.size,
                     'stored': False, 'utf8': utf8, 'meta': meta}
            files.append(entry)
            if utf8 and tar_info.size <= constraints.MAX_FILE_SIZE:
                entry['stored'] = read_all(tar, tar_info)
    except (tarfile.TarError, zlib.error) as error:
        return {'files': files, 'error': 'Invalid Tar File: %s' % error}
    except Exception as error:  # bulk answers 500 and stops
        return {'files': files, 'error': 'Exception: %s: %s' % (type(error).__name__, error)}
    return {'files': files, 'error': None}


for line in sys.stdin:
    case = json.loads(line)
    print(json.dumps(extract(base64.b64decode(case['tar']), case['base'], case.get('compress', ''))), flush=True)

"""
How Swift 2.30.1 reads request bytes, with Swift's own code (Debian's python3-swift) and the eventlet and
standard library it runs on, for readers-differential.test.ts. One JSON object per input line, one per output line.

  {"kind": "path", "target": str}        the request target as it reaches Swift (latin-1: one char per byte)
      -> {"status": "ok", "version", "account", "container", "object"} as the proxy server's controllers read
         it (eventlet's unquote, check_utf8, split_path, valid_api_version, the controllers' unquote) and
         "extract_base", where bulk extracts an archive PUT there, or
         {"status": 412 | 404 | 400 | "info" | "no-controller"}
  {"kind": "query", "query": str, "names": [str]}
      -> {"params": {name: value (bytes as latin-1) | null}} from swob's req.params (last of repeated keys),
         "true": {name: config_true_value of it}, "first": {name: parse_qs's first value} (as tempurl reads)
  {"kind": "head", "head": base64}       request head bytes (request line, header lines, empty line)
      -> {"environ": {KEY: value}} the HTTP_* / CONTENT_* keys SwiftHttpProtocol.get_environ files them under
  {"kind": "int", "value": str}          -> {"value": str | null}: Python's int() of a header value
  {"kind": "slo", "body": base64, "heads": {"c/o": {"length", "etag", "type", "slo"}}}
      -> {"status": int, "stored": int | null}: the slo middleware's own multipart-manifest PUT, run against
         a stand-in for the rest of the pipeline that answers the segment HEADs from "heads" (404 otherwise)
         and keeps the manifest SLO writes; "stored" is its size in bytes
  {"kind": "complete", "body": base64}   -> {"parts": [int] | null, "error": str | null}: the part numbers
         s3api's CompleteMultipartUpload puts in the manifest (its XML reader, schema and loop)
"""
import base64
import io
import json
import sys
import urllib.parse
from http import client as http_client

from swift.common import swob
from swift.common.constraints import check_utf8, valid_api_version
from swift.common.http_protocol import SwiftHttpProtocol
from swift.common.middleware import slo
from swift.common.middleware.s3api.etree import fromstring, XMLSyntaxError, DocumentInvalid
from swift.common.swob import normalize_etag
from swift.common.utils import config_true_value, split_path


def read_path(target):
    # eventlet: PATH_INFO is the target before "?", unquoted to latin-1 (a WSGI string of bytes).
    env = {'REQUEST_METHOD': 'GET', 'PATH_INFO': urllib.parse.unquote(target.split('?', 1)[0], encoding='latin1')}
    req = swob.Request(env)
    # proxy/server.py handle_request
    try:
        if not check_utf8(swob.wsgi_to_str(req.path_info)):
            return {'status': 412}
    except UnicodeError:
        return {'status': 412}
    if req.path == '/info':
        return {'status': 'info'}
    try:
        version, account, container, obj = split_path(swob.wsgi_to_str(req.path), 1, 4, True)
    except ValueError:
        return {'status': 404}
    if account and not valid_api_version(version):
        return {'status': 400}
    # bulk's extract-archive base: what follows the account, trailing slashes dropped (handle_extract_iter).
    try:
        extract_base = swob.wsgi_to_str((req.split_path(2, 3, True)[2] or '').rstrip('/'))
    except ValueError:
        extract_base = None
    named = read_names(version, account, container, obj)
    if named.get('status') == 'ok':
        named['extract_base'] = extract_base
    return named


def read_names(version, account, container, obj):
    unquote = urllib.parse.unquote
    if obj and container and account:
        return {'status': 'ok', 'version': version, 'account': unquote(account), 'container': unquote(container), 'object': unquote(obj)}
    if container and account:
        return {'status': 'ok', 'version': version, 'account': unquote(account), 'container': unquote(container), 'object': None}
    if account and not container and not obj:
        return {'status': 'ok', 'version': version, 'account': unquote(account), 'container': None, 'object': None}
    return {'status': 'no-controller'}


def read_query(query, names):
    req = swob.Request({'REQUEST_METHOD': 'GET', 'PATH_INFO': '/', 'QUERY_STRING': query})
    firsts = urllib.parse.parse_qs(query, keep_blank_values=True)  # as tempurl reads its parameters
    return {'params': {name: req.params.get(name) for name in names},
            'true': {name: config_true_value(req.params.get(name)) for name in names},
            'first': {name: firsts[name][0] if name in firsts else None for name in names}}


class _Stub(object):
    """What SwiftHttpProtocol.get_environ reads of its handler, with the headers http.server's parser made."""

    class _Server(object):
        def get_environ(self):
            return {}

    class _Socket(object):
        def getsockname(self):
            return ('127.0.0.1', 8080)

    def __init__(self, head):
        lines = head.split(b'\r\n', 1)
        words = lines[0].decode('iso-8859-1').split(' ')
        self.command, self.path = words[0], words[1]
        rest = io.BytesIO(lines[1] if len(lines) > 1 else b'\r\n')
        self.headers = http_client.parse_headers(rest, _class=SwiftHttpProtocol.MessageClass)
        self.server = self._Server()
        self.request = self._Socket()
        self.client_address = ('127.0.0.1', 50000)
        self.rfile = io.BytesIO(b'')
        self.wfile = io.BytesIO()
        self.connection = None


def read_head(head):
    try:
        environ = SwiftHttpProtocol.get_environ(_Stub(head))
    except Exception as error:  # what Swift's server would not get past
        return {'error': repr(error)}
    keep = {k: v for k, v in environ.items() if k.startswith('HTTP_') or k in ('CONTENT_TYPE', 'CONTENT_LENGTH')}
    return {'environ': keep}


def read_int(value):
    try:
        return {'value': str(int(value))}
    except (ValueError, TypeError):
        return {'value': None}


LAST_MODIFIED = 'Sat, 01 Jan 2000 00:00:00 GMT'


def slo_put(body, heads):
    """The slo middleware's PUT ?multipart-manifest=put, over a stand-in pipeline."""
    stored = []

    def app(env, start_response):
        path = swob.wsgi_to_str(env['PATH_INFO'])
        if env['REQUEST_METHOD'] == 'HEAD':
            key = path.split('/', 3)[3] if path.count('/') >= 3 else ''
            head = heads.get(key)
            if head is None:
                start_response('404 Not Found', [('Content-Length', '0')])
                return [b'']
            headers = [('Content-Length', str(head['length'])), ('Etag', '"%s"' % head['etag']),
                       ('Content-Type', head['type']), ('Last-Modified', LAST_MODIFIED)]
            if head.get('slo'):
                # A manifest that knows its size: SLO answers its HEAD without reading it (slo-size, slo-etag).
                headers += [('X-Static-Large-Object', 'True'), ('X-Object-Sysmeta-Slo-Size', str(head['length'])),
                            ('X-Object-Sysmeta-Slo-Etag', head['etag'])]
            start_response('200 OK', headers)
            return [b'']
        if env['REQUEST_METHOD'] == 'PUT':
            stored.append(env['wsgi.input'].read())
            start_response('201 Created', [('Content-Length', '0'), ('Etag', '"x"')])
            return [b'']
        start_response('405 Method Not Allowed', [('Content-Length', '0')])
        return [b'']

    middleware = slo.filter_factory({})(app)
    req = swob.Request.blank('/v1/AUTH_a/c/manifest', method='PUT', body=body, query_string='multipart-manifest=put',
                             headers={'Content-Type': 'application/octet-stream'})
    try:
        resp = req.get_response(middleware)
        resp.body  # runs the response iterator, which writes the manifest
        status = resp.status_int
    except Exception:  # a 500 from catch_errors: nothing is written
        return {'status': 500, 'stored': None}
    return {'status': status, 'stored': len(stored[0]) if stored and status // 100 == 2 else None}


def complete_parts(body):
    try:
        complete_elem = fromstring(body, 'CompleteMultipartUpload')
        parts = []
        previous = 0
        for part_elem in complete_elem.iterchildren('Part'):
            number = int(part_elem.find('./PartNumber').text)
            if number <= previous:
                return {'parts': None, 'error': 'InvalidPartOrder'}
            previous = number
            etag = normalize_etag(part_elem.find('./ETag').text)
            if len(etag) != 32 or any(c not in '0123456789abcdef' for c in etag):
                return {'parts': None, 'error': 'InvalidPart'}
            parts.append(number)
        return {'parts': parts, 'error': None}
    except (XMLSyntaxError, DocumentInvalid):
        return {'parts': None, 'error': 'MalformedXML'}
    except Exception as error:
        return {'parts': None, 'error': type(error).__name__}


def answer(case):
    kind = case['kind']
    if kind == 'path':
        return read_path(case['target'])
    if kind == 'query':
        return read_query(case['query'], case['names'])
    if kind == 'head':
        return read_head(base64.b64decode(case['head']))
    if kind == 'int':
        return read_int(case['value'])
    if kind == 'slo':
        return slo_put(base64.b64decode(case['body']), case['heads'])
    if kind == 'complete':
        return complete_parts(base64.b64decode(case['body']))
    raise ValueError(kind)


if __name__ == '__main__':
    import logging
    logging.disable(logging.CRITICAL)
    for line in sys.stdin:
        print(json.dumps(answer(json.loads(line))), flush=True)

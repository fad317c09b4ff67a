"""
What Swift's formpost stores of a form, read with Swift's own code (Debian's python3-swift): the
multipart reader, header parser and Content-Disposition parser formpost uses, driven the way
formpost._translate_form drives them (fields read 4096 bytes at a time, each file read by its PUT in
client_chunk_size blocks). Signatures and limits are left out: this is about which bytes become files.

Input: one JSON object per line, {"boundary": str, "body": base64}. Output: one JSON object per line,
{"valid": bool, "files": [{"filename": str, "size": int, "content": base64}]}.
"""
import base64
import io
import json
import sys

from swift.common.exceptions import MimeInvalid
from swift.common.utils import iter_multipart_mime_documents, parse_content_disposition, parse_mime_headers

READ_CHUNK_SIZE = 4096  # formpost.READ_CHUNK_SIZE
MAX_VALUE_LENGTH = 4096  # formpost.MAX_VALUE_LENGTH
CLIENT_CHUNK_SIZE = 65536  # the proxy server's default client_chunk_size


def files_of(boundary, body):
    files = []
    try:
        for fp in iter_multipart_mime_documents(io.BytesIO(body), boundary.encode('utf-8'), read_chunk_size=READ_CHUNK_SIZE):
            hdrs = parse_mime_headers(fp)
            disp, attrs = parse_content_disposition(hdrs.get('Content-Disposition', ''))
            if disp == 'form-data' and attrs.get('filename'):
                content = b''
                while True:
                    chunk = fp.read(CLIENT_CHUNK_SIZE)
                    if not chunk:
                        break
                    content += chunk
                files.append({'filename': attrs['filename'], 'size': len(content), 'content': base64.b64encode(content).decode()})
            else:
                mxln = MAX_VALUE_LENGTH
                while mxln:
                    chunk = fp.read(mxln)
                    if not chunk:
                        break
                    mxln -= len(chunk)
                while fp.read(READ_CHUNK_SIZE):
                    pass
    except MimeInvalid:
        return {'valid': False, 'files': []}
    return {'valid': True, 'files': files}


for line in sys.stdin:
    case = json.loads(line)
    print(json.dumps(files_of(case['boundary'], base64.b64decode(case['body']))), flush=True)

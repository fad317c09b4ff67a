"""
What a Swift filter's conf is, read with paste.deploy's own loader (Debian's python3-pastedeploy, as Swift's
proxy-server loads its pipeline): loadcontext(FILTER, 'config:<file>', name=...) and the merge every Swift
filter_factory makes (conf = global_conf.copy(); conf.update(local_conf)).

Input: one JSON object per line, {"text": str (the file), "filter": str (the name after "filter:")}.
Output: one JSON object per line, {"conf": {key: value} with the file's directory written /HERE, without paste's own keys (here, __file__, __name__, use)} or
{"error": str} where paste or ConfigParser refuses the file.
"""
import json
import os
import sys
import tempfile

from paste.deploy.loadwsgi import FILTER, loadcontext

OWN_KEYS = {'here', '__file__', 'use', '__name__'}


def read(text, name):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, 'proxy-server.conf')
        with open(path, 'w') as f:
            f.write(text)
        try:
            context = loadcontext(FILTER, 'config:' + path, name=name)
        except Exception as error:  # anything paste or ConfigParser refuses
            return {'error': type(error).__name__}
        conf = dict(context.global_conf)
        conf.update(context.local_conf)
        # The file's directory (%(here)s) as the proxy's side names it.
        return {'conf': {k: v.replace(directory, '/HERE') for k, v in conf.items() if k not in OWN_KEYS}}


for line in sys.stdin:
    case = json.loads(line)
    print(json.dumps(read(case['text'], case['filter'])), flush=True)

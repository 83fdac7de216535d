"""gRPC stubs for tufkey's native API (``tufkey.v1``), generated from proto/.

Do not edit the ``tufkey_pb2*`` files: regenerate them with generate-stubs.sh.
"""

"""Generated from protos/embedrank/tei/v1 by protos/generate.sh; do not edit."""

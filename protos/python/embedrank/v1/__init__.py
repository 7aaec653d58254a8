"""Generated from protos/embedrank/v1 by protos/generate.sh; do not edit."""

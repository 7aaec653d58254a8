# CPU image of the embedrank server. The exporter (torch) is not in it: export models
# elsewhere (`pip install '.[export]'` in a checkout of this repository, then
# `embedrank export ...`) and mount the repository. It has the `import` extra (no torch), so
# `--model` (or EMBEDRANK_MODELS) imports checkpoints that ship onnx/model.onnx into /models first:
#   docker run -p 50051:50051 -v $PWD/models:/models embedrank --model minilm=sentence-transformers/all-MiniLM-L6-v2 It runs as uid 1000: exports are
# 0755/0644, so it reads a repository exported by any user.
#   docker build -t embedrank .
#   docker run -p 50051:50051 -v $PWD/models:/models embedrank
# The HTTP conventions (OpenAI /v1/embeddings, Cohere /v1/rerank; docs/http.md) are off unless a port
# is given:  docker run -p 50051:50051 -p 8080:8080 -e EMBEDRANK_HTTP_PORT=8080 -v $PWD/models:/models embedrank
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY model ./model
COPY server ./server
COPY exporter ./exporter
COPY cli ./cli
COPY clients/python ./clients/python
RUN pip install '.[import,otel]' && useradd --uid 1000 --no-create-home embedrank

USER embedrank
EXPOSE 50051 8080
ENV EMBEDRANK_MODEL_REPOSITORY=/models EMBEDRANK_HOST=0.0.0.0 EMBEDRANK_PORT=50051 HF_HOME=/tmp/hf
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD python -c "import grpc,sys;from grpc_health.v1 import health_pb2 as h,health_pb2_grpc as g;c=grpc.insecure_channel('127.0.0.1:50051');sys.exit(g.HealthStub(c).Check(h.HealthCheckRequest(),timeout=2).status!=1)"
ENTRYPOINT ["embedrank", "serve"]

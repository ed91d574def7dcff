FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY compliance ./compliance
COPY worker ./worker
COPY rules ./rules
RUN pip install --no-cache-dir -e '.[monitoring]'
ENV RULES_DIR=/app/rules
EXPOSE 8000
CMD ["gunicorn", "-c", "python:compliance.gunicorn_conf", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "compliance.wsgi:app"]

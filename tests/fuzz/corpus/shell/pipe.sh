ls -la | grep x |& sort | head -n 3

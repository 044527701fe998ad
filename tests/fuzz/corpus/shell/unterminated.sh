echo "abc $(ls `id

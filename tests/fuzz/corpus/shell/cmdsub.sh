echo "$(rm x)" $(ls $(pwd)) `id`

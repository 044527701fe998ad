cat <<< "$(rm x)" <<<word

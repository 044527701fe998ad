diff <(ls a) >(tee b) 2>(cat)

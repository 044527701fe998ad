echo `echo \`rm x\``

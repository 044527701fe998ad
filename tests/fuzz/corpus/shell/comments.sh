#!/bin/bash
ls # ; rm x
ls a#b;# c
